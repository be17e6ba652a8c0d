"""Stage one: plan, decode, encode and write every clip's frames into feature-store parts."""
