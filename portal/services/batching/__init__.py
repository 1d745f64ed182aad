"""The batch engine and its record types (STYLE 14): `engine` runs a batch of any type,
`preflight` decides what blocks a record, `marking` writes ConnectWise accounting batches,
`pacing` keeps both sides' limits, `types/` says what each kind of record is."""
