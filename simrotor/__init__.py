"""The ``simrotor`` command root: sub-command wiring and the demo. It imports every
package; no package imports it."""
