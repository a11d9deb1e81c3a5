"""The Train tab: the recipe form, Start / Pause / Stop, progress, live plots and the run
list. It drives the shared :class:`resnet_gui.qt.shared.session.TrainingSession`."""
