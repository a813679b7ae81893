"""Audit outputs: the traceability matrix (requirement → control → workflow source → evidence sources → owner
→ retention → latest result → open findings → exceptions) as CSV, XLSX, HTML and JSON
(``accessproof.audit.matrix``), the same facts as an OSCAL assessment-results document
(``accessproof.audit.oscal``), and the ``accessproof matrix`` command (``accessproof.audit.commands``)."""
