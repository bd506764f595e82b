"""IoT resources the importer attaches: device policy, thing type, thing group.

Each is created by the stack unless the configuration names an existing one.
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
    def __init__(self, scope: Construct, id_: str, *, ctx: DeploymentContext):
        super().__init__(scope, id_)
        cfg, names = ctx.config, ctx.names
        #: setting -> literal for each resource the user named (not created here).
        self.configured: dict[str, str] = {}
        if cfg.iot_policy_name:
            self.policy_name = cfg.iot_policy_name
        else:
            self.policy_name = IotPolicy(self, "policy", name=names.iot_policy,
                                         policy=cfg.iot_policy_document or device_policy(ctx)).name
        if cfg.thing_type:
            self.thing_type_name = cfg.thing_type
        else:
            self.thing_type_name = IotThingType(self, "thing-type", name=names.thing_type).name
        if cfg.thing_group:
            self.thing_group_name = cfg.thing_group
            thing_group_arn = ctx.arn("iot", f"thinggroup/{cfg.thing_group}")
        else:
            group = IotThingGroup(self, "thing-group", name=names.thing_group)
            self.thing_group_name, thing_group_arn = group.name, group.arn
        #: the importer attaches the policy to each certificate (else the group carries it).
        self.per_certificate = cfg.policy_attachment == "certificate"
        if not self.per_certificate:
            IotPolicyAttachment(self, "group-policy", policy=self.policy_name, target=thing_group_arn)

    def arns(self, ctx: DeploymentContext) -> dict[str, str]:
        return {
            "thing_type": ctx.arn("iot", f"thingtype/{self.thing_type_name}"),
            "thing_group": ctx.arn("iot", f"thinggroup/{self.thing_group_name}"),
            # Thing and certificate names are only known per device: scoped to account and region.
            "things": ctx.arn("iot", "thing/*"),
            "certificates": ctx.arn("iot", "cert/*"),
        }
