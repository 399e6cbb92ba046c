"""``{% load flagsvc %}``: ``{% flag "key" %}…{% else %}…{% endflag %}`` and
``{% flag_value "key" [default] as name %}``, for the ``request`` in the template context
(the ``django.template.context_processors.request`` processor puts it there).

    {% flag "new-checkout" %}<a href="/checkout/new/">Try the new checkout</a>{% endflag %}
    {% flag "!maintenance" %}…{% else %}Back soon{% endflag %}
    {% flag_value "upload.max-size-mb" 10 as max_mb %}Up to {{ max_mb }} MB
"""

from __future__ import annotations

from typing import Any

from django import template
from django.template.base import FilterExpression, NodeList, Parser, Token
from django.template.context import Context

from flagsvc_sdk.django.context import flag_is_active, flag_value

register = template.Library()


class FlagNode(template.Node):
    def __init__(self, key: FilterExpression, active: NodeList, inactive: NodeList) -> None:
        self.key, self.active, self.inactive = key, active, inactive

    def render(self, context: Context) -> str:
        key = str(self.key.resolve(context))
        if flag_is_active(context.get("request"), key):
            return self.active.render(context)
        return self.inactive.render(context)


@register.tag("flag")
def do_flag(parser: Parser, token: Token) -> FlagNode:
    bits = token.split_contents()
    if len(bits) != 2:
        raise template.TemplateSyntaxError(f"{bits[0]!r} takes one argument: the flag key")
    key = parser.compile_filter(bits[1])
    active = parser.parse(("else", "endflag"))
    inactive = NodeList()
    if parser.next_token().contents == "else":
        inactive = parser.parse(("endflag",))
        parser.delete_first_token()
    return FlagNode(key, active, inactive)


class FlagValueNode(template.Node):
    def __init__(self, key: FilterExpression, default: FilterExpression | None, name: str) -> None:
        self.key, self.default, self.name = key, default, name

    def render(self, context: Context) -> str:
        default: Any = self.default.resolve(context) if self.default is not None else None
        context[self.name] = flag_value(
            context.get("request"), str(self.key.resolve(context)), default
        )
        return ""


@register.tag("flag_value")
def do_flag_value(parser: Parser, token: Token) -> FlagValueNode:
    bits = token.split_contents()
    if len(bits) not in (4, 5) or bits[-2] != "as":
        raise template.TemplateSyntaxError(f'usage: {{% {bits[0]} "key" [default] as name %}}')
    default = parser.compile_filter(bits[2]) if len(bits) == 5 else None
    return FlagValueNode(parser.compile_filter(bits[1]), default, bits[-1])
