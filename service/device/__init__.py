"""Scoring on a device: the device path of the ranking service.

:mod:`.plan` decides, from the settings, how this process scores (host or device path, attention
backend, onnxruntime providers, what runs the graphs) and opens the matching runner; it imports
nothing heavy. The device path itself (:mod:`.context`, :mod:`.modules`, :mod:`.graphs`,
:mod:`.runner`) imports PyTorch and is loaded only when chosen, so the CPU image never needs it.
"""
