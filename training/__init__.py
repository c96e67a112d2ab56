"""Training from trajectories (RFT, masked-action SFT, RL). Its parts arrive with the training issues."""
