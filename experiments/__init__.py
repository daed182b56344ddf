"""The paper's tasks, data, NTPT models, baselines and experiments."""
