"""Files exchanged with the billing centre: import of accounts, meters and history; export."""
