"""equigym environments (numpy and MuJoCo only: nothing here imports torch or SB3)."""
