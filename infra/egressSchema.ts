/**
 * The stack key `egress` (schema and type), apart from config.ts so the egress plan (egress.ts)
 * can read its type without importing the whole stack schema (no import cycle).
 */
import { z } from 'zod';
import { cidr, k8sName, labels, port } from './primitives';

/** A destination outside the render that the gateway may reach: a CIDR (or a namespace) and a port. */
const egressExtra = z
  .object({
    cidr: cidr.optional(),
    namespace: k8sName.optional(),
    port,
    protocol: z.enum(['TCP', 'UDP']).default('TCP'),
    /** Provider or proxy host names that resolve into this CIDR (a private endpoint's name). */
    hosts: z.array(z.string().min(1)).default([]),
  })
  .strict()
  .refine((e) => !!e.cidr !== !!e.namespace, 'set exactly one of cidr or namespace');

export const egressSchema = z
  .object({
    clusterDomain: z.string().default('cluster.local'),
    extra: z.array(egressExtra).default([]),
    /** An HTTPS proxy for upstream calls: the pods get HTTPS_PROXY/HTTP_PROXY/NO_PROXY, the policy the proxy. */
    proxy: z
      .object({
        url: z.url({ protocol: /^http$/, error: 'must be an http:// URL (the proxy itself; https:// targets are tunnelled through it with CONNECT)' }),
        noProxy: z.array(z.string().min(1)).default([]),
      })
      .strict()
      .optional(),
    dns: z
      .object({
        namespace: k8sName.default('kube-system'),
        podLabels: labels.default({ 'k8s-app': 'kube-dns' }),
        /** NodeLocal DNSCache's link-local address (often 169.254.20.10), when the cluster runs it. */
        nodeLocalAddress: z.ipv4().optional(),
      })
      .strict()
      .prefault({}),
  })
  .strict()
  .prefault({});

export type EgressConfig = z.output<typeof egressSchema>;
