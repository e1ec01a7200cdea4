"""The run's data and the facts every layer shares: errors, the target, options, state, secrets,
the seed. Imports nothing of the other layers."""
