"""The city-wide picture (#20): published signed summaries and the rules to trust them."""
