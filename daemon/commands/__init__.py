"""The `putt-daemon` commands: each module turns parsed arguments into a call on the service or a stage."""
