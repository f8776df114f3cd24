"""The toy world: procedural pedestrians with exact ATR parsing maps, captions and a garment catalog."""
