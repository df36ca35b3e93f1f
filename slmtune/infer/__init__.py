"""Generation engines, constrained decoding, batch extraction."""
