"""Status outlets: how the running service tells systemd and its operators what it is doing."""
