"""CDKTF constructs of the thingpress stack: one concern each, composed by ``stacks.stack``."""
