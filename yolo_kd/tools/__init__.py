"""One module per command besides train: export (QAT export, parity), fix-bn, predict, train-teacher, demo, inspect."""
