"""Dataset service: owns projects, datasets, dataset entries and project tags."""
