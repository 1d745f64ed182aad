"""connections: connectwise, intuit app, companies, tokens

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25 20:30:20.004657
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table('company',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('realm_id', sa.String(length=40), nullable=False),
    sa.Column('qbo_name', sa.String(length=255), nullable=False),
    sa.Column('legal_name', sa.String(length=255), nullable=True),
    sa.Column('country', sa.String(length=40), nullable=True),
    sa.Column('is_us', sa.Boolean(), nullable=False),
    sa.Column('ast_enabled', sa.Boolean(), nullable=False),
    sa.Column('using_sales_tax', sa.Boolean(), nullable=False),
    sa.Column('class_tracking', sa.String(length=10), nullable=False),
    sa.Column('track_locations', sa.Boolean(), nullable=False),
    sa.Column('location_label', sa.String(length=40), nullable=True),
    sa.Column('multicurrency', sa.Boolean(), nullable=False),
    sa.Column('home_currency', sa.String(length=3), nullable=True),
    sa.Column('account_numbers', sa.Boolean(), nullable=False),
    sa.Column('custom_txn_numbers', sa.Boolean(), nullable=False),
    sa.Column('epayments_available', sa.Boolean(), nullable=False),
    sa.Column('book_close_date', sa.Date(), nullable=True),
    sa.Column('status', sa.Enum('connected', 'reconnect_needed', 'disconnected', name='companystatus', native_enum=False, length=20), nullable=False),
    sa.Column('is_default', sa.Boolean(), nullable=False),
    sa.Column('connected_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('connected_by', sa.String(length=254), nullable=True),
    sa.Column('info_refreshed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_error', sa.String(length=500), nullable=True),
    sa.Column('last_intuit_tid', sa.String(length=80), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_company')),
    sa.UniqueConstraint('realm_id', name=op.f('uq_company_realm_id'))
    )
    op.create_table('cw_connection',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('site', sa.String(length=255), nullable=False),
    sa.Column('company_id', sa.String(length=100), nullable=False),
    sa.Column('public_key', sa.String(length=100), nullable=False),
    sa.Column('private_key_enc', sa.Text(), nullable=True),
    sa.Column('private_key_set_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('private_key_set_by', sa.String(length=254), nullable=True),
    sa.Column('client_id', sa.String(length=100), nullable=False),
    sa.Column('codebase', sa.String(length=60), nullable=False),
    sa.Column('api_version', sa.String(length=20), nullable=False),
    sa.Column('verify_tls', sa.Boolean(), nullable=False),
    sa.Column('timeout_seconds', sa.Integer(), nullable=False),
    sa.Column('company_name', sa.String(length=255), nullable=True),
    sa.Column('version_code', sa.String(length=40), nullable=True),
    sa.Column('is_cloud', sa.Boolean(), nullable=True),
    sa.Column('system_level_confirmed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('system_level_confirmed_by', sa.String(length=254), nullable=True),
    sa.Column('last_test_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_test_ok', sa.Boolean(), nullable=True),
    sa.Column('last_test_message', sa.String(length=500), nullable=True),
    sa.Column('last_success_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('server_time_zone', sa.String(length=80), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_cw_connection'))
    )
    op.create_table('cw_permission_probe',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('ran_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('ran_by', sa.String(length=254), nullable=True),
    sa.Column('results', sa.JSON(), nullable=False),
    sa.Column('missing', sa.Integer(), nullable=False),
    sa.Column('unknown', sa.Integer(), nullable=False),
    sa.Column('error', sa.String(length=500), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_cw_permission_probe'))
    )
    with op.batch_alter_table('cw_permission_probe', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_cw_permission_probe_ran_at'), ['ran_at'], unique=False)

    op.create_table('qbo_app',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('client_id', sa.String(length=200), nullable=False),
    sa.Column('client_secret_enc', sa.Text(), nullable=True),
    sa.Column('client_secret_set_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('environment', sa.String(length=20), nullable=False),
    sa.Column('discovery_url', sa.String(length=500), nullable=True),
    sa.Column('api_base_url', sa.String(length=500), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_qbo_app'))
    )
    op.create_table('qbo_token',
    sa.Column('company_id', sa.Integer(), nullable=False),
    sa.Column('access_token_enc', sa.Text(), nullable=False),
    sa.Column('access_expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('refresh_token_enc', sa.Text(), nullable=False),
    sa.Column('refresh_expires_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('refresh_hard_expires_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['company_id'], ['company.id'], name=op.f('fk_qbo_token_company_id_company'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('company_id', name=op.f('pk_qbo_token'))
    )



def downgrade() -> None:

    op.drop_table('qbo_token')
    op.drop_table('qbo_app')
    with op.batch_alter_table('cw_permission_probe', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_cw_permission_probe_ran_at'))

    op.drop_table('cw_permission_probe')
    op.drop_table('cw_connection')
    op.drop_table('company')

