"""Training: the epoch loop (``loop``), its steps, devices, optimisers and schedules (``steps``), augmentation
(``augment``), torchrun (``distributed``), the progress bar (``progress``), and the hooks run between epochs
(``hooks/``, one per file)."""
