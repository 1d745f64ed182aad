"""Domain logic: takes a Session and clients; knows nothing of Flask requests."""
