"""The Lab tab: degradation, lesion study and loss landscape (issue 11)."""

from resnet_gui.qt.lab.tab import LabTab, install_lab_tab

__all__ = ["LabTab", "install_lab_tab"]
