"""IoT resources the importer attaches: device policy, thing type, thing group.

The stack always creates its device policy and thing group; the configuration may
add existing ones (several of each) and name an existing thing type.
With ``policy_attachment`` ``thing-group`` (the default) the device policy is
attached once, to the thing group: every thing in the group inherits it when its
device connects with the thing name as client id, which the device policy
requires anyway (AWS IoT developer guide, "Static thing groups": a policy attached
to a group is inherited by the things in it; the thing name must match the
client id). The importer then attaches no policy per certificate.
The default device policy is least privilege: a device connects only with its
own thing name as client id (and only while its certificate is attached to that
thing), and publishes / subscribes / receives only under
``thingpress/<its thing name>/``.
"""

from __future__ import annotations

from typing import Any

from cdktf_cdktf_provider_aws.iot_policy import IotPolicy
from cdktf_cdktf_provider_aws.iot_policy_attachment import IotPolicyAttachment
from cdktf_cdktf_provider_aws.iot_thing_group import IotThingGroup
from cdktf_cdktf_provider_aws.iot_thing_type import IotThingType
from constructs import Construct

from stacks import iam
from stacks.constructs.context import DeploymentContext

#: an IoT policy variable; "$$" keeps Terraform from reading "${" as interpolation.
THING_NAME = "$${iot:Connection.Thing.ThingName}"


def device_policy(ctx: DeploymentContext) -> str:
    root = ctx.names.thing_topic_root
    return iam.document(
        iam.statement("ConnectAsOwnThing", ["iot:Connect"], ctx.arn("iot", f"client/{THING_NAME}"),
                      condition={"Bool": {"iot:Connection.Thing.IsAttached": "true"}}),
        iam.statement("PublishAndReceiveOwnTopics", ["iot:Publish", "iot:Receive"],
                      ctx.arn("iot", f"topic/{root}/{THING_NAME}/*")),
        iam.statement("SubscribeOwnTopics", ["iot:Subscribe"], ctx.arn("iot", f"topicfilter/{root}/{THING_NAME}/*")),
    )


class IotResources(Construct):
    """The created device policy, thing type (unless configured) and thing group, plus the configured existing ones.

    ``policy_names`` / ``thing_group_names``: the created policy / group first, then
    the existing ones the configuration lists (``iot_policy_names``, ``thing_groups``).
    In ``thing-group`` mode every policy is attached to the created group (never to
    a user's existing group: thingpress does not change resources it does not own);
    in ``certificate`` mode the importer attaches each to every certificate.
    """

    def __init__(self, scope: Construct, id_: str, *, ctx: DeploymentContext):
        super().__init__(scope, id_)
        cfg, names = ctx.config, ctx.names
        self.policy_name = IotPolicy(self, "policy", name=names.iot_policy,
                                     policy=cfg.iot_policy_document or device_policy(ctx)).name
        self.policy_names = [self.policy_name, *cfg.iot_policy_names]
        if cfg.thing_type:
            self.thing_type_name = cfg.thing_type
        else:
            self.thing_type_name = IotThingType(self, "thing-type", name=names.thing_type).name
        group = IotThingGroup(self, "thing-group", name=names.thing_group)
        self.thing_group_name = group.name
        self.thing_group_names = [self.thing_group_name, *cfg.thing_groups]
        #: the importer attaches the policies to each certificate (else the created group carries them).
        self.per_certificate = cfg.policy_attachment == "certificate"
        if not self.per_certificate:
            for index, policy in enumerate(self.policy_names):
                IotPolicyAttachment(self, "group-policy" if index == 0 else f"group-policy-{index}",
                                    policy=policy, target=group.arn)

    def arns(self, ctx: DeploymentContext) -> dict[str, Any]:
        return {
            "thing_type": ctx.arn("iot", f"thingtype/{self.thing_type_name}"),
            "thing_groups": [ctx.arn("iot", f"thinggroup/{name}") for name in self.thing_group_names],
            # Thing and certificate names are only known per device: scoped to account and region.
            "things": ctx.arn("iot", "thing/*"),
            "certificates": ctx.arn("iot", "cert/*"),
        }
