"""Shared logic no stage owns: the data's tables, features, the model, metrics, IO and params."""
