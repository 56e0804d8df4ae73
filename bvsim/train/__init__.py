"""Training: one loop (``loop``) for the batched MLP kernel (``mlp``) and a user's
torch module (``module``); closed-form ridge (``ridge``); a user's scikit-learn estimator
(``sklearn``); which of them trains a ``model.kind`` (``trainers``); what they share
(``engine``) and the devices they run on (``devices``); and the per-model
``torch.optim`` reference loop that proves them (``reference``)."""
