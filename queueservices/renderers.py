"""The API's renderer: DRF's JSONRenderer, with orjson writing the compact form."""

from rest_framework.renderers import JSONRenderer

from jobs.jsontext import answer_bytes

# DRF's encoder's fallbacks (times, decimals, lazy strings), for what orjson
# does not write itself.
_DEFAULT = JSONRenderer.encoder_class().default


class FastJSONRenderer(JSONRenderer):
    """The same bytes as JSONRenderer for the API's answers (the same JSON
    values, where a number may be spelt differently); an `indent` asked for in
    the Accept header goes to JSONRenderer itself."""

    def render(self, data, accepted_media_type=None, renderer_context=None):
        indent = self.get_indent(accepted_media_type, renderer_context or {})
        if data is None or indent is not None:
            return super().render(data, accepted_media_type, renderer_context)
        return answer_bytes(data, _DEFAULT)
