"""Use cases that tie the pure core to the store; transactions live here."""
