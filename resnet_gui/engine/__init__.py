"""What an architecture does: build, analyse, train, export (torch; never Qt)."""
