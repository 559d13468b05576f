"""Break-glass recovery: the sealed recovery kit and the offline identity that opens it."""
