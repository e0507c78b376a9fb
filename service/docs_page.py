"""``GET /docs``: the Swagger UI of the service's OpenAPI document (``/docs.json``).

BentoML serves the same UI at ``/``; ``/docs`` is where FastAPI users look for it. The page uses
BentoML's bundled Swagger UI assets (``/static_content``) and its initializer script, so it works
offline, loads nothing from third parties and needs no inline script.
"""

from __future__ import annotations

DOCS_HTML = """<!DOCTYPE html>
<html lang="en">
  <head>
    <meta charset="utf-8">
    <title>sciner API</title>
    <link rel="stylesheet" type="text/css" href="./static_content/swagger-ui.css">
    <link rel="stylesheet" type="text/css" href="./static_content/index.css">
  </head>
  <body>
    <div id="swagger-ui"></div>
    <script src="./static_content/swagger-ui-bundle.js" charset="UTF-8"></script>
    <script src="./static_content/swagger-ui-standalone-preset.js" charset="UTF-8"></script>
    <script src="./static_content/swagger-initializer.js" charset="UTF-8"></script>
  </body>
</html>
"""
