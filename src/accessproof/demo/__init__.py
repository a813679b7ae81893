"""The demo company: a simulated regulated medical-device firm whose identity life is written in vendor formats."""
