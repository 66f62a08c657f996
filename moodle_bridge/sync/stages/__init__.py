"""The write stages of a sync, one module per Moodle resource, each a :class:`~.base.Stage`.

A stage knows its items: when one can be sent, how it travels through its typed wrapper in
:mod:`moodle_bridge.moodle`, what the journal keeps of a batch, and what a confirmed answer
changes in the store. The runner (:mod:`moodle_bridge.sync.executor`) does everything else
once for all of them: budgeted chunks, the journal, bisection, settling, the breaker.
"""
