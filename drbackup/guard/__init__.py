"""The ransomware guard (#16): signals that a source's changes look like an attack. This first
strand holds the pure signals only: content (content.py) and indicators (indicators.py)."""
