"""Training engine shared by every exercise: Lightning modules, the Trainer set-up, checkpoints, frozen features."""
