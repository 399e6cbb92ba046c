"""Every write to the flag domain: import this package and call ``services.<name>(...)``.

One module per aggregate (environments, flags, states, kills, segments,
credentials) over ``core``, the step they share: lock, check, write, bump the
version, audit, publish after commit. Views, admin, commands and tasks call these;
nothing else writes flags.
"""

from flags.services.core import (
    KILL_FIELDS,
    MAX_KILL_REASON,
    MAX_REASON,
    STATE_FIELDS,
)
from flags.services.credentials import (
    token_issue,
    token_last_used_update,
    token_revoke,
    trigger_create,
    trigger_revoke,
)
from flags.services.environments import environment_create, environment_update
from flags.services.flags import (
    FLAG_EDITABLE_FIELDS,
    flag_archive,
    flag_create,
    flag_unarchive,
    flag_update,
)
from flags.services.kills import (
    KillOutcome,
    TagKillOutcome,
    flag_kill,
    flag_kill_by_tag,
    flag_restore,
    flag_restore_by_tag,
    trigger_fire,
    trigger_fire_reason,
    trigger_test,
)
from flags.services.segments import (
    SEGMENT_FIELDS,
    segment_create,
    segment_delete,
    segment_update,
)
from flags.services.states import flag_state_update

__all__ = [
    "FLAG_EDITABLE_FIELDS",
    "KILL_FIELDS",
    "MAX_KILL_REASON",
    "MAX_REASON",
    "SEGMENT_FIELDS",
    "STATE_FIELDS",
    "KillOutcome",
    "TagKillOutcome",
    "environment_create",
    "environment_update",
    "flag_archive",
    "flag_create",
    "flag_kill",
    "flag_kill_by_tag",
    "flag_restore",
    "flag_restore_by_tag",
    "flag_state_update",
    "flag_unarchive",
    "flag_update",
    "segment_create",
    "segment_delete",
    "segment_update",
    "token_issue",
    "token_last_used_update",
    "token_revoke",
    "trigger_create",
    "trigger_fire",
    "trigger_fire_reason",
    "trigger_revoke",
    "trigger_test",
]
