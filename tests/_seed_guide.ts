/**
 * The seed guide's resource files, verbatim (comments included), shared by
 * every test that replays the guide.
 *
 * @module
 */

/** `bot.yaml` of step 2/5. */
export const SEED_BOT_YAML = `kind: bot
version: v1
metadata:
  # name is a unique identifier for the Bot in the cluster.
  name: example
spec:
  # roles is a list of roles to grant to the Bot. Don't worry if you don't know
  # what roles you need to specify here, the Access Guides will walk you through
  # creating and assigning roles to the already created Bot.
  roles: []
`;

/** `token-example.yaml` of step 3/5. */
export const SEED_TOKEN_YAML = `kind: token
version: v2
metadata:
  # This name will be used in tbot's \`onboarding.token\` field.
  name: example
spec:
  roles: [Bot]
  # bot_name should match the name of the bot created earlier in this guide.
  bot_name: example
  join_method: bound_keypair
  bound_keypair:
    recovery:
      mode: standard
      limit: 1
`;
