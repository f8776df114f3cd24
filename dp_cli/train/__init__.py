"""Training of the Diverse Person model: config, data, loop, checkpoints."""
