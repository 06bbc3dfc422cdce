"""RVC: Piper speech converted to the owner's timbre. Only its settings exist so far; see issue 7."""
