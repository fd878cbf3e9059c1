// Evaluates flags with the npm OFREP web provider under Node, and prints the details as JSON.
// Usage: node evaluate.mjs <base url> <client key> <context JSON> <flag>:<type>...
// where <type> is boolean, string, number or object.
// Polling is off: the provider pauses polling on the browser's `document` visibility events,
// which Node has not; every evaluation reads the one bulk answer fetched at start-up.
import { OpenFeature } from "@openfeature/web-sdk";
import { OFREPWebProvider } from "@openfeature/ofrep-web-provider";

const [baseUrl, key, context, ...flags] = process.argv.slice(2);
const provider = new OFREPWebProvider({
  baseUrl,
  headers: [["Authorization", `Bearer ${key}`]],
  pollInterval: 0,
  changeDetection: "none",
});
await OpenFeature.setContext(JSON.parse(context));
await OpenFeature.setProviderAndWait(provider);
const client = OpenFeature.getClient();
const details = {};
const typed = {
  boolean: (flag) => client.getBooleanDetails(flag, false),
  string: (flag) => client.getStringDetails(flag, ""),
  number: (flag) => client.getNumberDetails(flag, -1),
  object: (flag) => client.getObjectDetails(flag, {}),
};
for (const argument of flags) {
  const [flag, type] = argument.split(":");
  details[flag] = typed[type](flag);
}
console.log(JSON.stringify(details));
await OpenFeature.close();
