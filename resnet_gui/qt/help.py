"""Help: the keyboard shortcuts and a short getting-started page, both offline.

The shortcut list is read from the window's own actions, so it names exactly the keys that
work; the getting-started page ships with the package (resources/getting-started.html) and
never reaches for the network.
"""

from __future__ import annotations

from html import escape

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QTextBrowser, QVBoxLayout, QWidget

from resnet_gui.resources import resource_path

GETTING_STARTED = "getting-started.html"

# What the mouse and keys do beyond the menus' actions.
GESTURES = (
    ("Ctrl+mouse wheel", "Zoom the canvas"),
    ("Drag from the palette", "Add a stem, stage, block, head or shortcut kind"),
    ("Drag a stage or block", "Move it (between stages too)"),
    ("Enter in a field", "Apply the value; Ctrl+Z then undoes it from anywhere"),
    ("Ctrl+Z in a field being typed in", "Undo the typing in that field"),
)


def _action_text(action: QAction) -> str:
    return action.text().replace("&&", "\0").replace("&", "").replace("\0", "&").rstrip("…")


def shortcut_rows(window: QWidget) -> list[tuple[str, str]]:
    """(keys, what they do) for every action of ``window`` that has a shortcut."""
    rows, seen = [], set()
    for action in window.findChildren(QAction):
        keys = [key.toString(QKeySequence.SequenceFormat.NativeText)
                for key in action.shortcuts() if not key.isEmpty()]
        if not keys or not action.text():
            continue
        keys_text = " or ".join(keys)
        if keys_text in seen:
            continue
        seen.add(keys_text)
        # "Undo Change width" names the last edit: the shortcut is for any edit.
        name = _action_text(action)
        for generic in ("Undo", "Redo"):
            if name.startswith(generic):
                name = f"{generic} the last edit" if generic == "Undo" else "Redo the edit undone"
        rows.append((keys_text, name))
    return sorted(rows, key=lambda row: row[1].lower())


def shortcuts_html(window: QWidget) -> str:
    def table(rows) -> str:
        cells = "".join(f"<tr><td style='padding:2px 16px 2px 0'><b>{escape(keys)}</b></td>"
                        f"<td>{escape(what)}</td></tr>" for keys, what in rows)
        return f"<table>{cells}</table>"

    return ("<h2>Keyboard shortcuts</h2>" + table(shortcut_rows(window))
            + "<h3>Mouse and fields</h3>" + table(GESTURES))


def getting_started_html() -> str:
    path = resource_path(GETTING_STARTED)
    try:
        return path.read_text(encoding="utf-8")
    except OSError as error:  # a broken install: say where the page should be
        return (f"<p>The getting-started page could not be read from {escape(str(path))} "
                f"({escape(error.strerror or str(error))}); reinstall resnet-gui.</p>")


class HelpDialog(QDialog):
    """``helpDialog``: one page of rich text; links are not followed (no network)."""

    def __init__(self, title: str, html: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("helpDialog")
        self.setWindowTitle(title)
        self.browser = QTextBrowser()
        self.browser.setObjectName("helpText")
        self.browser.setOpenLinks(False)
        self.browser.setOpenExternalLinks(False)
        self.browser.setHtml(html)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.browser)
        layout.addWidget(buttons)
        self.resize(640, 560)

    @property
    def text(self) -> str:
        return self.browser.toPlainText()


def show_help(window: QWidget, page: str) -> HelpDialog:
    """Open the "shortcuts" or "getting-started" page beside ``window`` (not modal)."""
    if page == "shortcuts":
        dialog = HelpDialog("Keyboard shortcuts — resnet-gui", shortcuts_html(window), window)
    else:
        dialog = HelpDialog("Getting started — resnet-gui", getting_started_html(), window)
    dialog.setModal(False)
    dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    dialog.show()
    return dialog
