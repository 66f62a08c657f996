"""The sync engine: desired state, plan, execution with journal and resume."""
