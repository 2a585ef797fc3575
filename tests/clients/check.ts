// Type-checked against the TypeScript types openapi-typescript generates from
// api-spec/openapi.yaml (scripts/clients.sh typescript): what an approval system written in
// TypeScript would call, with openapi-fetch. `tsc --strict` fails if the spec loses an operation,
// a parameter or a field this code relies on.
import createClient from "openapi-fetch";
import type { components, paths } from "./schema";

type Licence = components["schemas"]["Licence"];
type Report = components["schemas"]["VerificationReport"];

const api = createClient<paths>({
  baseUrl: "http://127.0.0.1:8080",
  headers: { authorization: "Bearer demo-verifier" },
});

export async function verify(licence: Licence): Promise<Report["verdict"]> {
  const { data, error } = await api.POST("/v1/verify", {
    params: { query: { service_item: "220100-FOOD-001", use_cause: "办理食品经营许可" } },
    body: licence,
  });
  if (error) throw new Error(`${error.code}: ${error.detail}`);
  const failed: string[] = data.checks.filter((c) => c.outcome === "failed").map((c) => c.code);
  if (failed.length > 0) console.log("failed checks:", failed.join(", "));
  return data.verdict;
}

export async function issue(number: string): Promise<string> {
  const { data, error } = await api.POST("/v1/licences", {
    body: {
      type_code: "11100000000013338W032",
      number,
      holder: { name: "吉林示例科技有限公司", code: "91350100M000100Y43", code_type: "001" },
      valid_until: "2046-11-21",
      face: { company_name: "吉林示例科技有限公司" },
    },
  });
  if (error) throw new Error(error.detail);
  return data.id ?? "";
}

export async function revoke(id: string): Promise<number | null | undefined> {
  const { data, error } = await api.POST("/v1/licences/{id}/revoke", {
    params: { path: { id } },
    body: { reason: "吊销", note: "违法经营" },
  });
  if (error) throw new Error(error.detail);
  return data.log_index;
}

export async function lookUp(id: string): Promise<unknown[]> {
  const { data, error } = await api.POST("/v1/licence-types/{code}/lookup", {
    params: { path: { code: "11100000000013338W032" } },
    body: { service_item: "220100-FOOD-001", use_cause: "核验营业执照", id },
  });
  if (error) throw new Error(error.code);
  return data.licences ?? [];
}

export async function checkpoint(): Promise<string | undefined> {
  const { data } = await api.GET("/v1/log/checkpoint");
  return data;
}
