"""The rig's known proportions: every region of a Proof of Putt rig in rig units, as a top-down drawing.

The automatic proposal fits this drawing to a frame. It is the rig the simulator draws; a real rig with other
proportions needs its own layout here.
"""

from __future__ import annotations

from dataclasses import dataclass

Quad = tuple[tuple[float, float], ...]


@dataclass(frozen=True, slots=True)
class RigLayout:
    """The rig's regions in rig units: x from the golfer toward the cup, y across the mat."""

    left_of_mat: Quad = ((0, 0), (110, 0), (110, 300), (0, 300))
    mat: Quad = ((115, 0), (360, 0), (360, 300), (115, 300))
    ramp: Quad = ((365, 90), (490, 90), (490, 300), (365, 300))
    catch: Quad = ((496, 70), (536, 70), (536, 322), (496, 322))
    return_track: Quad = ((370, 310), (482, 310), (482, 338), (370, 338))
    ignore_area: Quad = ((0, 312), (360, 312), (360, 400), (0, 400))
    hole_centre: tuple[float, float] = (430.0, 195.0)
    size: tuple[float, float] = (536.0, 400.0)

    def outlines(self) -> tuple[Quad, ...]:
        """The outlines that show as edges in a frame (the left of the mat and the ignore area are floor)."""
        return self.mat, self.ramp, self.catch, self.return_track


LAYOUT = RigLayout()
