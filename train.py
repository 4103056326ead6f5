"""Train: `python train.py [overrides]` (the same as `lightcls-train`)."""

from lightcls.cli.main import train

if __name__ == "__main__":
    train()
