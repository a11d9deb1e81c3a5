"""Where the app keeps its settings: one INI file per user. Tests redirect it with
QSettings.setPath (see tests/gui/conftest.py)."""

from __future__ import annotations

from PySide6.QtCore import QSettings

ORGANISATION = "resnet-gui"
APPLICATION = "resnet-gui"


def app_settings() -> QSettings:
    """The app's settings (INI, per user)."""
    return QSettings(QSettings.Format.IniFormat, QSettings.Scope.UserScope, ORGANISATION,
                     APPLICATION)
