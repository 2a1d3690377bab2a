"""The strategy service: runs strategies (``streamdesk.strategy.api``) on committed data.

See docs/strategies.md, "Live runtime".
"""
