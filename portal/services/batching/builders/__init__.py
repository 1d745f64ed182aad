"""Pure builders: a ConnectWise record, the settings and the reference cache in, the
QuickBooks payload out. No database, no HTTP, no clock."""
