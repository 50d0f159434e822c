"""hashicorp/google's schema, read from the provider's prebuilt CDK bindings on PyPI.

No provider binary can be downloaded on our machines, but `cdktf-cdktf-provider-google` (provider 6.x)
and `cdktn-provider-google` (7.x, 8.x) ship a jsii assembly generated from the provider's own
`terraform providers schema -json`. `extract` turns one wheel back into that JSON shape; the static
check (tests/terraform/provider_schema.py) and the stand-in provider (scripts/tfstandin) read it.
Stdlib only: it runs under the project's Python and under the stand-in's own venv alike.

What the bindings cannot say (so nor can we): whether an optional argument is also computed, and the
provider's validation functions (name formats, ExactlyOneOf, ConflictsWith): `rules` carries the ones
our Terraform touches, each cited.
"""
