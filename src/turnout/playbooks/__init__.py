"""Playbooks: per connection, what a message must look like (or whether it goes at all) before
the destination maps it. The user's reference is docs/playbooks.md.

A playbook is the connection's consent needs and an ordered list of rules, each a table with an
optional `when` condition and actions, the same shape in TOML (`[[connections.playbook]]`) and
in JSON (a list of objects):

    from turnout.playbooks import Playbook, PlaybookError, as_dict, as_message, describe_diff

    playbook = Playbook.compile(
        rules,                       # list of dicts, e.g. config["connections"][0]["playbook"]
        consent=["marketing"],       # categories the connection needs ([]: no consent check)
        consent_missing="deliver",   # or "drop": a message that carries no consent at all
        base_dir=config_dir,         # where `function = "file.py:name"` files are found
        allow_functions=True,        # only for playbooks from the configuration file
    )                                # -> PlaybookError(rule, field, entry, line, column)

    shaped = playbook.apply(as_dict(message))   # never raises; never changes its input
    shaped.messages       # 0..n dicts to deliver (Segment's camelCase names)
    shaped.filtered       # "consent: not granted: marketing" | "playbook rule 1: drop" | None
    shaped.rules_applied  # ["rule 1", 'rule 3 "hash PII"']
    shaped.adjustments    # what could not be applied, per rule
    shaped.error          # a function's traceback: dead-letter the message with it
    shaped.changed        # False: messages == [the input]: deliver the typed original as is
    shaped.fields         # top-level fields changed (None: a function ran, any may have)

    for out in shaped.messages:   # back to typed messages for the destination's `map`
        typed = as_message(out, message, shaped.fields) if shaped.changed else message
        # msgspec.ValidationError ("... - at `$.userId`"): the playbook made it invalid

    shaped = playbook.shape(message)   # the same from the typed Message, as lanes call it:
                                       # its dicts hold only the fields the rules touch, and
    shaped.typed          # the one message out as a Message (None: convert as above)

    describe_diff(old_rules, new_rules)   # unified diff of the two as canonical TOML
    canonical_toml(rules)                 # one playbook's canonical TOML

Compile once per revision (conditions are parsed by lark, paths split, functions loaded from
their files) and share the Playbook: the first `apply` writes the playbook as one Python function
(codegen.py), and `apply` keeps no state between messages. `as_dict` is `msgspec.to_builtins`
without copying the nested objects, and `apply` copies only what it changes (copy-on-write), so
the stored message is never altered; with
`Shaped.fields`, `as_message` checks and replaces only the changed fields. A compiled
playbook's `rules`, `consent` and `consent_missing` are what it was compiled from, and
`is_empty` says when applying it would change nothing (no rules, no consent needed), so a lane
can skip the round trip entirely.
"""

from turnout.playbooks.conditions import ConditionError, compile_condition
from turnout.playbooks.consent import Consent, read_consent
from turnout.playbooks.diff import canonical_toml, describe_diff
from turnout.playbooks.errors import PlaybookError
from turnout.playbooks.messages import as_dict, as_message
from turnout.playbooks.playbook import Playbook, Shaped
from turnout.playbooks.rules import ACTIONS, KEYS

__all__ = [
    "ACTIONS",
    "KEYS",
    "ConditionError",
    "Consent",
    "Playbook",
    "PlaybookError",
    "Shaped",
    "as_dict",
    "as_message",
    "canonical_toml",
    "compile_condition",
    "describe_diff",
    "read_consent",
]
