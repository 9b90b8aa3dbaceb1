"""Documents the shop owner downloads: the certificate of erasure (JSON + HTML) and the register
extract (JSON + HTML in Swedish and English). Stored encrypted as `Artifact` rows; rendered with
jinja2 templates in `templates/`."""
