"""Training: the batched MLP engine and closed-form ridge, a user's torch module,
a user's scikit-learn estimator, and the per-model ``torch.optim`` reference loop that
proves them."""
