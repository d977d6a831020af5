"""Training engine shared by every exercise: Lightning modules, the Trainer set-up, run folders."""
